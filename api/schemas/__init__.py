"""Request and response schemas, one module per resource: what the API accepts and promises
to return. The class names name the OpenAPI components, so a rename changes the document."""
