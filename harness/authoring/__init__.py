"""For instructors: stubs from the reference, the stub and mutant checks, the mutation tool."""
