-- wrk script: POST /v1/leads with a JSON body. The key comes from the BOLTCALL_KEY environment.
wrk.method = "POST"
wrk.body = '{"name": "Jane Smith", "phone": "+15551234567", "email": "jane@example.com", "source": "form", "tags": ["bench"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BOLTCALL_KEY")
