"""The rules of an input file: headers and aliases, parsing, the pandera schema, messages, the template."""
