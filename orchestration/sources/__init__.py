"""Connectors to the real sources: Open Baltimore ArcGIS, the EMS inbox, health and boundary files."""
