"""Active learning: acquisition rules that pick which unlabelled frames to label next."""
