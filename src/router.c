/* placeholder: router */
