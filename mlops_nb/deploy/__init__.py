"""Deploy: exported packages (layout, verification, safe loading), export, retraining, schedules."""
