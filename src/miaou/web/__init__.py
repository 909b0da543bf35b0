"""The web client: static ES modules, web components and CSS served by the node."""
