"""eventrouter: a sample event/webhook router whose plugins filter, enrich and route events."""
