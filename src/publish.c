/* placeholder: publish */
