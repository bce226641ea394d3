"""Lifelong-learning algorithms: task definition and allocation, unseen-sample recognition,
unseen-task allocation, update decisions, and Ianvs' metrics.

Importing this package registers the built-in plug-ins under Sedna's class types (``STP``,
``UTD``, ``UTP``, ``KM``); :class:`~sedna.common.class_factory.ClassFactory` imports it on the
first look-up of those types. Every plug-in is a policy object with no I/O: the core
(:mod:`sedna.core.lifelong_learning`) does files, models and the knowledge base.
"""

from sedna.algorithms.lifelong.artifacts import KnownTask, Task, TaskGroup, nearest_distances, prototypes_of
from sedna.algorithms.lifelong.samples import TaskSamples, as_samples
from sedna.algorithms.lifelong.task_allocation import (
    TaskAllocationByDataAttr,
    TaskAllocationByNearestTask,
    TaskAllocationDefault,
)
from sedna.algorithms.lifelong.task_definition import TaskDefinitionByCluster, TaskDefinitionByDataAttr, kmeans
from sedna.algorithms.lifelong.task_groups import (
    DefaultInferenceIntegrate,
    DefaultTaskRelationDiscover,
    DefaultTaskRemodeling,
)
from sedna.algorithms.lifelong.unseen_allocation import UnseenTaskAllocationDefault
from sedna.algorithms.lifelong.unseen_recognition import (
    SampleRecognitionByConfidence,
    SampleRecognitionByDistance,
    SampleRecognitionByTaskAttr,
    SampleReRecognitionDefault,
)
from sedna.algorithms.lifelong.update_decision import TaskUpdate, UpdateStrategyDefault

__all__ = [
    "DefaultInferenceIntegrate",
    "DefaultTaskRelationDiscover",
    "DefaultTaskRemodeling",
    "KnownTask",
    "SampleReRecognitionDefault",
    "SampleRecognitionByConfidence",
    "SampleRecognitionByDistance",
    "SampleRecognitionByTaskAttr",
    "Task",
    "TaskAllocationByDataAttr",
    "TaskAllocationByNearestTask",
    "TaskAllocationDefault",
    "TaskDefinitionByCluster",
    "TaskDefinitionByDataAttr",
    "TaskGroup",
    "TaskSamples",
    "TaskUpdate",
    "UnseenTaskAllocationDefault",
    "UpdateStrategyDefault",
    "as_samples",
    "kmeans",
    "nearest_distances",
    "prototypes_of",
]
