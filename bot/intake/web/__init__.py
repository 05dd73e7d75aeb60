"""The web chat channel: the portal widget's WebSocket, its visitors and their conversation."""
