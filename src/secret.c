/* placeholder: secret */
