"""The realtime gateway: WebSocket sessions that receive every event their user may see."""
