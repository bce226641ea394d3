"""Feature classes: JointInference, BigModelService, FederatedLearning, IncrementalLearning."""
