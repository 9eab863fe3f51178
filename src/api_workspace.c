/* placeholder: api_workspace */
