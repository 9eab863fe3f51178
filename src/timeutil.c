/* placeholder: timeutil */
