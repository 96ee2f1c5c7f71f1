"""The directory: users, groups and memberships as the identity provider pushes them."""
