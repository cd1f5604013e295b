pub struct Engine; pub struct EngineLimits; pub struct TurnHandle;
