"""Global Manager: the cloud operator that turns ``sedna.io/v1alpha1`` resources into workers."""
