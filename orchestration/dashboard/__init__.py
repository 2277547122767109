"""The dashboard over the published marts: 911 calls, overdoses, neighborhood health, surveillance."""
