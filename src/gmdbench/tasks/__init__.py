"""Tasks: which molecules train a model and which test it out of distribution."""
