-- wrk script: GET /v1/calls?limit=20. The key comes from the BOLTCALL_KEY environment.
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BOLTCALL_KEY")
