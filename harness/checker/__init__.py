"""Inside the pytest process that checks a kata: the plugin, its event stream, isolation's checker side."""
