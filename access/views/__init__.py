"""Pages of identity and access: users, groups, policies, access keys, the simulator, MFA."""
