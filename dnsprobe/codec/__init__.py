"""The DNS codec: zones and the wire format, pure data and parsing with no sockets.

The nameserver serves from it, the scenario model validates records with it; it imports neither.
"""
