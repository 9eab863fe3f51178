/* placeholder: uuid */
