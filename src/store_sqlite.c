/* placeholder: store_sqlite */
