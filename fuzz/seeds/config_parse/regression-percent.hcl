vault {
  address = "https://vault.examdestination0"
  ca_cert = "/etc/ssl/vault-ca.pem%%{"
}
auto_auth {
  method "token_file" {
    config = { token_file_path = "/t" }
  }
}
