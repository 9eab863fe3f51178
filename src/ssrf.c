/* placeholder: ssrf */
