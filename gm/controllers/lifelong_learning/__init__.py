"""The LifelongLearningJob controller: :mod:`.reconciler` (the shared stage machine, a knowledge base and a
Deploy stage that publishes), :mod:`.workers` (its Pods, Deployment and Service), :mod:`.knowledge_base`
(where the KB runs), :mod:`.status` (``status.knowledgeBase`` and versions), :mod:`.validation` and
:mod:`.reports` (edge reports into status)."""

from gm.controllers.lifelong_learning.reconciler import setup
from gm.controllers.lifelong_learning.reports import handle_upstream

__all__ = ["handle_upstream", "setup"]
