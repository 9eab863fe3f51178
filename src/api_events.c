/* placeholder: api_events */
