"""Runs: configs hashed into run directories, their execution, and the results store."""
