"""The Trainer subclass and the steps of a run: build, train, report."""
