"""EC2/SSM/STS emulator for gpumachine's tests (a test tool, not product code)."""
