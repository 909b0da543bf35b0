"""Chat wing: guilds, channels, roles, permissions, messages."""
