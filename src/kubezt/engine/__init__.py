"""The evaluator: pure functions over IR; every answer comes with its explanation as data."""
