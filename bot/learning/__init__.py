"""Learning from the team: retraining, tuning, live trials, the weekly job and its schedule, simulation."""
