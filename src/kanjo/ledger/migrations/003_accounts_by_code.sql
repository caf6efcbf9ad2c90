-- Day-end jobs read a product's whole book (all accounts of one code) page by page in id order.
CREATE INDEX accounts_by_code ON ledger.accounts (ledger, code, id);
