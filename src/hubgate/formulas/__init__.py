"""Formulas (D39-D44): templates, instances, triggers, steps, executions and the step engine."""
