/* placeholder: store */
