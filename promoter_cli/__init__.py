"""`promoter`: the command-line client of a Promoter portal, over its HTTP API only."""
