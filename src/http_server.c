/* placeholder: http_server */
