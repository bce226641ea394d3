"""Ready-made federated learning workers: ``aggregator`` (cloud) and ``trainer`` (edge).

Both are configured only by the worker environment (DESIGN §4). The trainer trains a
numpy softmax-regression model on 64-feature digits (``softmax``); bring your own
estimator with ``sedna.core.federated_learning.FederatedLearning`` for anything else.
"""
