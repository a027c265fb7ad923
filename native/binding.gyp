{
  "targets": [
    {
      "target_name": "tally_gmp",
      "sources": ["gmp-decimal.c"],
      "libraries": ["-lgmp"],
      "cflags": ["-O2"]
    }
  ]
}
