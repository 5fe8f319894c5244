// Barrel of @app/datapath: import this library only through '@app/datapath'.
export {};
