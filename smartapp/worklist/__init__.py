"""The coordinator's worklist: population screening results, their status and who looked at them."""
