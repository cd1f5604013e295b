mod home_tools;
