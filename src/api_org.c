/* placeholder: api_org */
