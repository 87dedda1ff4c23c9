"""The fault catalogue: one library of damaged inputs applied to every reader."""
