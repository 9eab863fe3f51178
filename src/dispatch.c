/* placeholder: dispatch */
