"""Stored responses of the Responses API: kept in the gateway's database, owned by a user."""
