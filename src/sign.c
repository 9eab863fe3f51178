/* placeholder: sign */
