"""The web chat channel: the socket, and the conversation (inbox, reply, actions)."""
