"""Generated code for the audiences.v1 protobuf package. Do not edit."""
